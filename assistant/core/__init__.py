"""The shared kernel: settings, data types, protocols, model loading, the store, the prompt."""
