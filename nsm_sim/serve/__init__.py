"""The planning page (``nsm-sim serve``): the tree, the initiatives editable, the results live.

- :mod:`~nsm_sim.serve.document`: a scenario file edited and saved with its comments;
- :mod:`~nsm_sim.serve.fit_model`: the fit bundle, read once;
- :mod:`~nsm_sim.serve.planner`: the scenarios, their edits and results (the API's);
- :mod:`~nsm_sim.serve.charts`: the charts as Bokeh items, BokehJS from the package;
- :mod:`~nsm_sim.serve.server`: the HTTP server and its JSON endpoints.
"""

from nsm_sim.serve.document import ScenarioDocument
from nsm_sim.serve.fit_model import FitModel
from nsm_sim.serve.planner import PAGE_SIMULATIONS, Planner
from nsm_sim.serve.server import make_server, serve

__all__ = ["PAGE_SIMULATIONS", "FitModel", "Planner", "ScenarioDocument", "make_server", "serve"]
