from . import test_enrolment
from . import test_workflow
from . import test_modes
from . import test_queue
from . import test_validation
from . import test_security
from . import test_audience_purchase
