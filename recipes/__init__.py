"""Composition recipes: code that wires finetune/ and evaluation/ together (they never import each other)."""
