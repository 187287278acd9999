"""The fixture shop, generated: products, shoppers, events and images known by construction."""
