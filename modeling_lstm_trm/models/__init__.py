"""The two models, each in its own folder with its configuration, as in transformers. A modeling file imports only
its sibling configuration file (single-dot relative import), so the two files work when copied flat into a Hub
repository and loaded with `trust_remote_code=True`."""
