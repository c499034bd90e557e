"""Workshops: a class report from learners' JSON results, scenario packs for a room."""
