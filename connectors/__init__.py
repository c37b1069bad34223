"""Connectors: protocol in, envelope out, produce, acknowledge. Protocol quirks stay here."""
