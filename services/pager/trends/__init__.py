"""The branch manager's trends: waiting times, VIP waits, pages, pauses and tickets over 4 weeks, a quarter or 12
months of archived business days, read from the records database (services/records).

- `spans`: the ranges a manager picks (4w, quarter, 12m), the days and weeks each covers, ending yesterday;
- `models`: the trends as a document (heatmap cells, weekly rows, page kinds, pause reasons, days), the JSON the
  API answers;
- `figures`: the queries (the columns needed, one scan of the range's tickets) and the statistics computed from
  them, into the whole document;
- `csv`: each table as a CSV file, with bilingual headers and text never taken for a formula;
- `charts`: the charts, as SVG, drawn with the daily report's helpers;
- `views`: the page, and the JSON and CSV API; `render_trends` draws the page outside a request (bench/).
"""
