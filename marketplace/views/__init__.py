"""Marketplace pages (thin: validate the shape, call one service or selector, render)."""
