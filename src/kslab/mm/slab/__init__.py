"""mm/slab.c, split along its own sections: one module per section, functions named as in the kernel."""
