"""gunicorn settings read from the working directory (/app in the image): the access log
keeps no password-reset token (fitplatform.gunicorn_logging)."""

logger_class = "fitplatform.gunicorn_logging.RedactingLogger"
