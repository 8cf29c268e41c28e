from . import test_enrolment
