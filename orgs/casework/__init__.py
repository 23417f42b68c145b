"""Cases worked by organisations, and complaints about them."""
