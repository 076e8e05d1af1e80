"""``conductor demo``: the script (the release train it plays) and the transcript (what each
channel shows, printed as it happens)."""
