"""Neural networks of so-vits-svc 4.1: plain nn.Modules with keyword arguments, no I/O."""
