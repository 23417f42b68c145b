"""Social organisations, volunteers and purchased service tasks — arrives with issue 7."""
