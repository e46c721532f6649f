"""The dumb workers: each takes one kind of please-message and answers with a did-message."""
