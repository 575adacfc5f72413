//! What every controller shares: the wake-up loop (store events + a periodic tick) and small
//! readers for the k8s JSON shapes.
