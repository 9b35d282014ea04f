"""Sign up and sign in with Xero (OpenID Connect): the state of each round trip, the link from a Coordinoter user
to a Xero user, and the services and views that use them. The id_token itself is checked at the front door
(integrations/xero/openid.py)."""
