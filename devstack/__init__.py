"""The whole pipeline on one machine: moto, a SendGrid stand-in, the handlers."""
