// The checker lives in lib/sim/ so the simulator's oracle uses it too; tests keep importing it from here.
export * from '../../lib/sim/linearizability.js'
