"""sparsgd.sim: one-process versions of the distributed algorithms.

sim.collectives   P simulated ranks for every collective (the reference of ``comm``)
sim.sim_run       ``--mode sim``: the parameter server's own code with simulated workers
                  (sim.worker_sim) or drawn staleness (sim.drawn_sim), on the alpha-beta
                  clock of sim.network_clock; staleness distributions in sim.staleness
"""
