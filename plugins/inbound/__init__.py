"""Plugin ``inbound``: SendGrid Inbound Parse into a private S3 bucket (the seed's ``testMailReceiver``).

SendGrid posts every mail received on a parse hostname to a URL; here that is
a POST route under its own long random path on the stack's REST API, backed by
the ``inbound`` function (``plugins.inbound_handler``), which stores the
request body as received in the bucket and then calls the enabled plugins'
``inbound_mail`` hook (``inbound_log`` is an example).

Protection: the secret path, a size limit, and the ECDSA signature of an
Inbound Parse security policy, verified by ``handlers.signature`` (the Event
Webhook's verifier) against the policy's public key(s). When the program
manages SendGrid (``manageSendgridWebhook``, the default) it creates the
signature policy and wires its key in, and, given ``inboundParseHostname``,
the Parse setting (URL = the route, send raw per ``inboundSendRaw``, the
policy attached); ``inboundPublicKeys`` are extra keys. Otherwise they are
the keys, and without one the function refuses every request, unless
``allowUnsignedInbound`` is true.

The bucket: private (public access blocked, ACLs off, TLS only), encrypted
with the stack's KMS key (SSE-KMS, bucket key) or SSE-S3, objects expired
after ``inboundExpireDays`` (0: kept). The function may only put objects in it.
"""

from __future__ import annotations


from handlers.env import ENABLED_PLUGINS, SENDGRID_EVENTS_STACK, Var
from handlers.functions import Function
from handlers.hookspecs import hookspec

INBOUND_BUCKET = Var("INBOUND_BUCKET", "The S3 bucket the inbound function stores Inbound Parse requests in.")
INBOUND_PUBLIC_KEYS = Var(
    "INBOUND_PUBLIC_KEYS",
    "Comma-separated public keys of the Inbound Parse security policies (base64 DER); a request signed by "
    "any one of them is accepted.",
)
INBOUND_MAX_AGE_SECONDS = Var(
    "INBOUND_MAX_AGE_SECONDS",
    "Oldest Inbound Parse signature timestamp accepted, in seconds (0 = no age check); SendGrid retries "
    "for 3 days.", "345600",
)
INBOUND_ALLOW_UNSIGNED_INSECURE = Var(
    "INBOUND_ALLOW_UNSIGNED_INSECURE",
    "'true' accepts unsigned Inbound Parse posts when no public key is set (the secret path is then all).",
)

INBOUND = Function(
    "inbound", "plugins.inbound_handler.lambda_handler", timeout=29, memory=512,
    description="Stores SendGrid Inbound Parse posts in S3",
    reads=(INBOUND_BUCKET, INBOUND_PUBLIC_KEYS, INBOUND_MAX_AGE_SECONDS, INBOUND_ALLOW_UNSIGNED_INSECURE,
           ENABLED_PLUGINS, SENDGRID_EVENTS_STACK),
)
FUNCTION = INBOUND.name


# The hook this plugin offers (added to the plugin manager with it): the inbound function calls it.
@hookspec
def inbound_mail(mail):
    """Act on a mail SendGrid Inbound Parse posted, once it is stored (``inbound`` plugin).

    ``mail`` is a ``plugins.inbound_handler.StoredMail``: the S3 ``bucket`` and
    ``key`` it is stored under, the request ``body`` exactly as received (a
    multipart form; ``mail.form()`` parses it) and its ``content_type``,
    ``received_at`` (UTC) and whether it was ``signed``. Called in the inbound
    function, after the object is stored. Like a sink, raising means "not
    handled": the request is answered 5xx and SendGrid posts the mail again,
    which is stored as a new object and handed to every implementation again,
    so an implementation must make a repeat harmless.
    """
