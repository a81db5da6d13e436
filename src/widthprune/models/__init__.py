"""Where a model comes from: the bundled toy, a registry package's model (through GGUF conversion,
cached), a Hugging Face id or a local folder."""
