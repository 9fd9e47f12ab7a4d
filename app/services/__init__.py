"""The chat rules: the only place that decides who may see or write what.

Every public function takes the acting user (and works in `db.session`); the socket
handlers and HTTP views stay thin and call these.
"""
