"""Reading and validating the DATA.md catalog: rows, products, images, fingerprints."""
