"""Wire dialects: pure translators between one wire format and ``dragoman.core``."""
