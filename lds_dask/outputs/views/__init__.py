"""The explorer and report pack: the cube as numpy, Bokeh figures."""
