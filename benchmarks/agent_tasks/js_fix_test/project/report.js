const { mean } = require('./stats');

function average(scores) {
  return mean(scores);
}

module.exports = { average };
