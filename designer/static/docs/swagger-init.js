// The API reference page (/docs): Swagger UI from /static/vendor/swagger-ui, started by this file rather
// than an inline script, so the page works under the app's Content-Security-Policy (script-src 'self').
window.addEventListener('DOMContentLoaded', () => {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapi || '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
