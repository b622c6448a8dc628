"""JWT authentication that answers 401, never 500, for a token naming no valid user."""
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication


class SafeJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        try:
            return super().get_user(validated_token)
        except (ValueError, TypeError):  # a user id claim that is not an id
            raise exceptions.AuthenticationFailed("Token contained no recognizable user identification") from None
