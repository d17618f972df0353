"""The branch manager's daily report: tickets, waiting times, VIP waits, pauses and pages of one business day.

- `models`: the report as a document (rows, summary, envelope), the JSON the API answers;
- `days`: the business day asked for, its bounds, and time between two instants;
- `reads`: a day's tickets, pauses and pages as Redis holds them;
- `figures`: the statistics, per category, per hour, VIP waits, pauses, pages by kind, and the whole report;
- `csv`: each table as a CSV file, with bilingual headers and text never taken for a formula;
- `display`: how the page and its charts write the numbers (m:ss, wall-clock times, overruns in words);
- `charts`: the charts, as SVG;
- `session`: who reads the report, and the reading session a browser keeps;
- `views`: the page, and the JSON and CSV API.
"""
