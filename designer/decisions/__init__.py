"""Decision tables in the designer: DMN import, test evaluation and export (the JSON API)."""
