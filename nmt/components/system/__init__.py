"""System: processes, locks, private files, paths, errors, typed configs and code versions."""
