"""HoloViews comparison plots of cube nodes."""
