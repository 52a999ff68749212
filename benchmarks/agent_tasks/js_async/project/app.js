const { readConfig } = require('./store');

function start(name) {
  const config = readConfig(name);
  return config.debug ? 'debug' : 'normal';
}

module.exports = { start };
