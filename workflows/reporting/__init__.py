"""The registry of service achievements, the statistics, the annual report and the sheets
they export."""
