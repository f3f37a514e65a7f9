"""deploy [Pusher]: publish a blessed model and point serving at it."""
