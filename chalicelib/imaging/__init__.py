"""Image code: pure functions of bytes and Pillow images, no AWS."""
