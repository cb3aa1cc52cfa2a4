"""The web page (Gradio) over `sovits.api`, mounted in the server."""
