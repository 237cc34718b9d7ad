"""What leaves the pipeline: export, ACRO evidence, plots, explorer, report pack."""
