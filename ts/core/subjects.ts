/** NATS subjects, all scoped by federation (and experiment where it applies). */
const root = (federation: string) => `secflow.${federation}`;

export const subjects = {
  register: (f: string) => `${root(f)}.director.register`,
  heartbeat: (f: string) => `${root(f)}.director.heartbeat`,
  leave: (f: string) => `${root(f)}.director.leave`,
  submit: (f: string) => `${root(f)}.director.submit`,
  status: (f: string) => `${root(f)}.director.status`,
  envoyTask: (f: string, envoy: string) => `${root(f)}.envoy.${envoy}.task`,
  envoySecAgg: (f: string, envoy: string) => `${root(f)}.envoy.${envoy}.secagg`,
  events: (f: string, experiment: string) => `${root(f)}.exp.${experiment}.events`,
  results: (f: string, experiment: string, runId: string) => `${root(f)}.exp.${experiment}.${runId}.results`,
  secaggUploads: (f: string, experiment: string, runId: string) => `${root(f)}.exp.${experiment}.${runId}.secagg`,
  blob: (f: string, id: string) => `${root(f)}.blob.${id}`,
};
