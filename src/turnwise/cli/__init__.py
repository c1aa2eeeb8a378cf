"""The `turnwise` command line: thin commands over the stage cores. The only place logging is configured."""
