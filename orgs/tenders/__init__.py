"""Purchased service tasks: sealed bids, opening, evaluation, award, contracts, OCDS."""
