"""Sign-up, sign-in and the account page of members and volunteers."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
