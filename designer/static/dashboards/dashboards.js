// The dashboards' charts, drawn by Apache ECharts (vendored: /static/vendor/echarts.common.min.js) from the
// figures the page carries in #db-figures — the same numbers as GET /api/dashboards/{board}. When htmx
// swaps in fresh figures (polling), the charts are drawn again. No framework.
(() => {
  const charts = [];
  const yuan = (fen) => `¥${(fen / 100).toLocaleString('zh-CN', {minimumFractionDigits: 2, maximumFractionDigits: 2})}`;
  const days = (f) => (f.days || []).map((d) => d.slice(5));
  const line = (name, data, extra = {}) => ({name, type: 'line', smooth: true, showSymbol: false, data, ...extra});
  const bar = (name, data, extra = {}) => ({name, type: 'bar', data, ...extra});
  const axes = (x) => ({tooltip: {trigger: 'axis'}, legend: {type: 'scroll', top: 0}, grid: {left: 48, right: 16, top: 34, bottom: 28},
    xAxis: {type: 'category', data: x}, yAxis: {type: 'value', minInterval: 1}});
  const empty = (labels) => ({title: {text: labels.none, left: 'center', top: 'middle', textStyle: {color: '#8c959f', fontSize: 14}}});

  function options(board, f, labels) {
    if (board === 'marketer') {
      const channels = Object.keys(f.new_contacts.series);
      const flows = Object.keys(f.conversions.series);
      return {
        'chart-channels': channels.length ? {...axes(days(f)), series: channels.map((c) => bar(labels.channels[c] || c, f.new_contacts.series[c], {stack: 'c'}))} : empty(labels),
        'chart-messages': {...axes(days(f)), series: ['sent', 'skipped', 'deferred', 'failed'].map((k) => line(labels[k], f.messages.series[k]))},
        'chart-conversions': flows.length ? {...axes(days(f)), yAxis: [{type: 'value', minInterval: 1, name: labels.conversions},
          {type: 'value', name: labels.gmv, axisLabel: {formatter: (v) => yuan(v)}}],
        tooltip: {trigger: 'axis', valueFormatter: (v) => String(v)},
        series: [...flows.map((fl) => line(`${fl} · ${labels.conversions}`, f.conversions.series[fl])),
          ...flows.map((fl) => bar(`${fl} · ${labels.gmv}`, f.conversions.gmv_series[fl], {yAxisIndex: 1, tooltip: {valueFormatter: yuan}}))]} : empty(labels),
      };
    }
    if (board === 'ops') {
      const groups = Object.entries(f.backlog.by_group);
      return {
        'chart-volume': {...axes(days(f)), series: [bar(labels.tickets, f.volume.series)]},
        'chart-backlog': groups.length ? {...axes(groups.map(([, g]) => g.name)),
          series: [bar(labels.open, groups.map(([, g]) => g.open), {stack: 'b'}), bar(labels.waiting, groups.map(([, g]) => g.pending), {stack: 'b'})]} : empty(labels),
        'chart-agents': f.agents.length ? {...axes(f.agents.map((a) => a.name)),
          series: [bar(labels.load, f.agents.map((a) => a.open)), line(labels.capacity, f.agents.map((a) => a.capacity), {smooth: false, showSymbol: true})]} : empty(labels),
      };
    }
    const periods = Object.entries(f.by_period);
    const parties = Object.entries(f.by_party).slice(0, 15);
    const money = {tooltip: {trigger: 'axis', valueFormatter: yuan}};
    const yMoney = {type: 'value', axisLabel: {formatter: (v) => yuan(v)}};
    return {
      'chart-periods': periods.length ? {...axes(periods.map(([p]) => p.replace('..', '–'))), ...money, yAxis: yMoney,
        series: ['settled', 'pending', 'paid'].map((k) => bar(labels[k], periods.map(([, v]) => v[`${k}_fen`])))} : empty(labels),
      'chart-parties': parties.length ? {...axes(parties.map(([p]) => p)), ...money, yAxis: yMoney,
        series: ['settled', 'pending', 'paid'].map((k) => bar(labels[k], parties.map(([, v]) => v[`${k}_fen`])))} : empty(labels),
    };
  }

  function draw() {
    const source = document.getElementById('db-figures');
    const live = document.getElementById('db-live');
    if (!source || !live || !window.echarts) return;
    const {figures, labels} = JSON.parse(source.textContent);
    while (charts.length) charts.pop().dispose();
    for (const [id, option] of Object.entries(options(live.dataset.board, figures, labels))) {
      const el = document.getElementById(id);
      if (!el) continue;
      const chart = window.echarts.init(el, null, {renderer: 'svg'});
      chart.setOption({animation: false, ...option});
      charts.push(chart);
    }
    window.tideflowDashboard = {figures, charts: charts.length};
  }

  document.addEventListener('DOMContentLoaded', draw);
  document.body.addEventListener('htmx:afterSwap', (event) => { if (event.detail.target.id === 'db-live' || event.detail.elt?.id === 'db-live') draw(); });
  document.body.addEventListener('htmx:afterSettle', () => { if (!charts.length || !charts[0].getDom().isConnected) draw(); });
  window.addEventListener('resize', () => charts.forEach((c) => c.resize()));
  document.getElementById('db-preset')?.addEventListener('change', (event) => {
    const form = event.target.form;
    if (event.target.value !== 'custom') { form.from.value = ''; form.to.value = ''; form.submit(); }
  });
})();
