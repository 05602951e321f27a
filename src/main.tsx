import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { bootstrap } from './app/bootstrap';
import { App } from './ui/App';
import { UiContext } from './ui/context';
import './ui/styles.css';

const { store, controller } = bootstrap();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <UiContext.Provider value={{ store, actions: controller }}>
      <App />
    </UiContext.Provider>
  </StrictMode>,
);
