"""Output: formatting, terminal tables, figures, files and the HTML report."""
