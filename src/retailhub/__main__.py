from retailhub.cli.main import app

app()
