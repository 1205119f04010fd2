"""The raw landing contract (what a landing file must look like) and the loader into the raw zone."""
