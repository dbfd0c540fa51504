"""``fw serve``: the HTTP app, its micro-batching and its page (imported only by the command)."""
