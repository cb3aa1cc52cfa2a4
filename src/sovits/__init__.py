"""sovits: singing voice conversion compatible with so-vits-svc 4.0/4.1 model files."""

__version__ = "0.1.0"
