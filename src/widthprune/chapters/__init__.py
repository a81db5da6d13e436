"""The book: the papermill driver of its chapters, the browser check, the Sphinx tweaks."""
